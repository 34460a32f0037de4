"""Every config in conf/ composes, and every group instantiates into its typed object."""

from pathlib import Path

import pytest
import torch
from conftest import compose_config
from hydra.utils import instantiate

from video_mae.data.settings import DataSettings
from video_mae.engine.optim import OptimSettings
from video_mae.engine.train import TrainSettings
from video_mae.masking import RandomMasking, TubeMasking
from video_mae.models import MaskedAutoencoder

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def build_all(cfg):
    data = instantiate(cfg.data, _convert_="all")
    train = instantiate(cfg.train, _convert_="all")
    optim = instantiate(cfg.optim, _convert_="all")
    masking = instantiate(cfg.mask)
    instantiate(cfg.augment, _convert_="all")
    # Meta tensors: the real architecture, without allocating ViT-g's billion weights.
    with torch.device("meta"):
        model = instantiate(cfg.model, masking=masking, pixel_mean=list(data.mean), pixel_std=list(data.std), _convert_="all")
    assert isinstance(data, DataSettings) and isinstance(train, TrainSettings) and isinstance(optim, OptimSettings)
    assert isinstance(masking, (TubeMasking, RandomMasking)) and isinstance(model, MaskedAutoencoder)
    return data, train, optim, masking, model


def test_every_group_has_options():
    for group in ("data", "model", "mask", "optim", "recipe", "experiment"):
        assert options(group), group


@pytest.mark.parametrize("model", options("model"))
def test_each_model_composes_and_instantiates(model):
    cfg = compose_config("pretrain", [f"model={model}", "data=k400", "data.train_list=/lists/train.txt"])
    *_, mae = build_all(cfg)
    assert mae.encoder.embed_dim == cfg.model.encoder.embed_dim


def test_published_sizes():
    expected = {  # encoder width, depth, heads, patch; decoder width, heads (VideoMAE / VideoMAE V2)
        "vit_s": (384, 12, 6, 16, 192, 3),
        "vit_b": (768, 12, 12, 16, 384, 6),
        "vit_l": (1024, 24, 16, 16, 512, 8),
        "vit_h": (1280, 32, 16, 16, 640, 8),
        "vit_g": (1408, 40, 16, 14, 512, 8),
    }
    for name, sizes in expected.items():
        cfg = compose_config("pretrain", [f"model={name}"]).model
        enc = cfg.encoder
        assert (enc.embed_dim, enc.depth, enc.num_heads, enc.patch_size, cfg.decoder_dim, cfg.decoder_num_heads) == sizes
        assert cfg.decoder_depth == 4 and enc.tubelet_size == 2
    assert compose_config("pretrain", ["model=vit_g"]).model.encoder.mlp_ratio * 1408 == pytest.approx(6144)


@pytest.mark.parametrize("data", options("data"))
@pytest.mark.parametrize("mask", options("mask"))
def test_each_data_and_mask_composes_and_instantiates(data, mask):
    overrides = [f"data={data}", f"mask={mask}"]
    if data != "demo":
        overrides.append("data.train_list=/lists/train.txt")
    build_all(compose_config("pretrain", overrides))


@pytest.mark.parametrize("experiment", [e for e in options("experiment") if e.startswith("pretrain_")])
def test_each_pretraining_experiment_composes_and_instantiates(experiment):
    build_all(compose_config("pretrain", [f"experiment={experiment}", "data.train_list=/lists/train.txt"]))


def build_finetune(cfg):
    from video_mae.engine.evaluate import EvalSettings
    from video_mae.engine.mixup import VideoMixup
    from video_mae.tasks.finetune import build_classifier

    data = instantiate(cfg.data, _convert_="all")
    assert isinstance(instantiate(cfg.train, _convert_="all"), TrainSettings)
    assert isinstance(instantiate(cfg.optim, _convert_="all"), OptimSettings)
    assert isinstance(instantiate(cfg.eval, _convert_="all"), EvalSettings)
    assert isinstance(instantiate(cfg.mixup, num_classes=data.num_classes or 10), VideoMixup)
    instantiate(cfg.augment, _convert_="all")
    with torch.device("meta"):
        return data, build_classifier(cfg, data.num_classes or 10, None)


def test_every_app_config_has_a_test():
    assert sorted(p.stem for p in CONF.glob("*.yaml")) == ["evaluate", "extract", "finetune", "pretrain"]


@pytest.mark.parametrize("experiment", [e for e in options("experiment") if e.startswith("finetune_")])
def test_each_finetuning_experiment_composes_and_instantiates(experiment):
    extra = ["lists=/l"] if experiment in ("finetune_ucf101_vit_b", "finetune_hmdb51_vit_b") else ["data.train_list=/l/train.txt"]
    cfg = compose_config("finetune", [f"experiment={experiment}", *extra])
    data, model = build_finetune(cfg)
    assert model.num_classes == data.num_classes and model.encoder.embed_dim == 768


@pytest.mark.parametrize("probe", ["null", "linear", "attentive"])
@pytest.mark.parametrize("data", options("data"))
def test_finetune_composes_with_every_data_and_probe(data, probe):
    overrides = [f"data={data}", f"probe={probe}", "probe_heads=4"]
    if data != "demo":
        overrides.append("data.train_list=/l/train.txt")
    build_finetune(compose_config("finetune", overrides))


def test_finetuning_recipes():
    k400 = compose_config("finetune", ["experiment=finetune_k400_vit_b"])
    assert (k400.optim.layer_decay, k400.eval.num_clips, k400.eval.num_crops, k400.train.epochs) == (0.75, 5, 3, 75)
    assert k400.augment.flip is True and k400.mixup.mixup_alpha == 0.8 and k400.mixup.cutmix_alpha == 1.0
    ssv2 = compose_config("finetune", ["experiment=finetune_ssv2_vit_b"])
    assert (ssv2.data.sampling, ssv2.augment.flip, ssv2.eval.num_clips, ssv2.data.num_classes) == ("segments", False, 2, 174)
    ucf = compose_config("finetune", ["experiment=finetune_ucf101_vit_b", "lists=/data/ucf", "split=3"])
    assert (ucf.data.train_list, ucf.data.val_list) == ("/data/ucf/train_split3.txt", "/data/ucf/test_split3.txt")
    assert (ucf.optim.layer_decay, ucf.head.dropout, ucf.model.encoder.drop_path_rate) == (0.7, 0.5, 0.2)
    demo = compose_config("finetune", [])
    assert (demo.train.epochs, demo.data.num_frames, demo.eval.num_clips, demo.augment.rand_augment) == (40, 8, 2, None)
    assert demo.data.demo.train_split == "train" and demo.mixup.mixup_alpha == 0.0


def test_extract_config_composes():
    cfg = compose_config("extract", ["checkpoint=/runs/x/last.pt", "split=train"])
    assert (cfg.num_clips, cfg.dtype, cfg.split) == (4, "float16", "train")


def test_evaluate_config_composes():
    cfg = compose_config("evaluate", ["checkpoint=/runs/x/best.pt"])
    assert cfg.checkpoint == "/runs/x/best.pt" and cfg.eval.num_clips is None


def test_the_demo_recipe_goes_with_the_demo_data_only():
    demo = compose_config("pretrain", [])
    assert (demo.data.name, demo.train.epochs, demo.train.batch_size, demo.model.norm_pix_loss) == ("demo", 6, 8, False)
    assert (demo.data.demo.train_split, demo.data.clips_per_video, demo.mask.span, demo.mask.ratio) == ("unlabelled", 4, 0.5, 0.5)
    # The demo's mask settings apply to whichever masking is chosen; a user's values win.
    mine = compose_config("pretrain", ["mask=random", "mask.span=0", "mask.ratio=0.9"])
    assert (mine.mask._target_, mine.mask.span, mine.mask.ratio) == ("video_mae.masking.RandomMasking", 0, 0.9)
    k400 = compose_config("pretrain", ["data=k400", "model=vit_b"])
    assert (k400.train.epochs, k400.train.batch_size, k400.optim.warmup_epochs, k400.model.norm_pix_loss) == (800, 32, 40, True)
    assert k400.optim.base_lr == 1.5e-4
    assert (k400.mask.ratio, k400.mask.span, k400.data.clips_per_video) == (0.9, 0.0, 1)


def test_published_recipes():
    k400 = compose_config("pretrain", ["experiment=pretrain_k400_vit_b"])
    assert (k400.data.sampling_rate, k400.mask.ratio, k400.train.epochs, k400.optim.base_lr) == (4, 0.9, 1600, 1.5e-4)
    ssv2 = compose_config("pretrain", ["experiment=pretrain_ssv2_vit_b"])
    assert (ssv2.data.sampling_rate, ssv2.augment.flip, ssv2.data.flip_invariant, ssv2.train.epochs) == (2, False, False, 2400)
    ucf = compose_config("pretrain", ["experiment=pretrain_ucf101_vit_b"])
    assert (ucf.mask.ratio, ucf.optim.base_lr, ucf.train.epochs) == (0.75, 3e-4, 3200)
    for cfg in (k400, ssv2, ucf):
        assert cfg.model.encoder.embed_dim == 768 and list(cfg.optim.betas) == [0.9, 0.95]


def test_missing_train_list_names_the_key():
    cfg = compose_config("pretrain", ["data=k400"])
    with pytest.raises(Exception, match="train_list"):
        instantiate(cfg.data, _convert_="all")


def test_a_typo_in_a_group_fails_at_instantiate():
    cfg = compose_config("pretrain", ["+train.epoch=3"])
    with pytest.raises(Exception, match="epoch"):
        instantiate(cfg.train, _convert_="all")
    cfg = compose_config("pretrain", ["+model.encoder.depht=3"])
    with pytest.raises(Exception, match="depht"):
        instantiate(cfg.model.encoder)


def test_invalid_mask_ratio_names_the_key():
    cfg = compose_config("pretrain", ["mask.ratio=1.5"])
    with pytest.raises(Exception, match="mask.ratio"):
        instantiate(cfg.mask)


@pytest.mark.parametrize("app", ["pretrain", "finetune"])
def test_run_directory_name_ignores_exactly_the_resume_free_keys(app):
    import importlib

    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="video_mae.conf", version_base="1.3"):
        cfg = compose(config_name=app, overrides=["train.device=cpu", "mask.ratio=0.75" if app == "pretrain" else "probe=linear"],
                      return_hydra_config=True)  # fmt: skip
    excluded = cfg.hydra.job.config.override_dirname.exclude_keys
    # train.epochs names a different run (a different schedule) but may be raised on resume.
    assert set(excluded) == set(importlib.import_module(f"video_mae.tasks.{app}").RESUME_FREE_KEYS) - {"train.epochs"}
    assert cfg.hydra.job.override_dirname == ("mask.ratio=0.75" if app == "pretrain" else "probe=linear")
    assert cfg.hydra.run.dir == f"runs/{app}/{cfg.hydra.job.override_dirname.replace('=', '-')}"
