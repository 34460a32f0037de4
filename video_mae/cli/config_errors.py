"""One-line reports of Hydra's config errors, with the closest key for a typo.

Hydra answers ``train.epoch=3`` with "Could not override 'train.epoch'" and the key error
below it; a user wants the line that says what to type instead.
"""

from __future__ import annotations

import difflib


def _messages(err: BaseException) -> list[str]:
    """The error's own message and those of its causes, each cut to its first lines."""
    seen, out = set(), []
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        text = " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
        # OmegaConf appends "full_key: ... object_type=dict": the key is named already.
        text = text.split(" full_key:")[0].split(" Config search path:")[0].strip()
        if text and text != "None" and text not in out:
            out.append(text)
        err = err.__cause__ or err.__context__
    return out


def _full_key(err: BaseException) -> str | None:
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        key = getattr(err, "full_key", None)
        if isinstance(key, str) and key:
            return key
        err = err.__cause__ or err.__context__
    return None


def _config_keys(config_name: str, config_path: str) -> list[str]:
    """Every dotted key of the command's default config (composed without overrides)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=config_path.removeprefix("pkg://"), version_base="1.3"):
        cfg = compose(config_name=config_name)
    keys: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                name = f"{prefix}{key}"
                keys.append(name)
                walk(value, name + ".")

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return keys


def closest_key(key: str, keys: list[str]) -> str | None:
    """The known key a typo most likely meant: the same parent first, then anywhere."""
    parent, _, leaf = key.rpartition(".")
    siblings = [k for k in keys if k.rpartition(".")[0] == parent]
    for pool, target in ((siblings, key), (keys, key)):
        match = difflib.get_close_matches(target, pool, n=1, cutoff=0.75)
        if match:
            return match[0]
    match = difflib.get_close_matches(leaf, [k.rpartition(".")[2] for k in keys], n=1, cutoff=0.8)
    if match:
        return next(k for k in keys if k.rpartition(".")[2] == match[0])
    return None


def describe_error(err: BaseException) -> str:
    """One line for an error of the task: for a config value that a settings class refused
    (Hydra wraps it in "Error in call to target ..."), the refusal itself."""
    from hydra.errors import InstantiationException

    if isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    # The error's own message only: the exceptions it was raised while handling are detail.
    return " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip()) or type(err).__name__


def describe_config_error(err: BaseException, config_name: str, config_path: str) -> str:
    """One line: what Hydra refused, and for an unknown key the closest known one."""
    from hydra.errors import OverrideParseException

    message = "; ".join(_messages(err))
    if isinstance(err, OverrideParseException):
        return (
            f"{message}; a value holding '=', ',', spaces or brackets must be quoted for Hydra "
            "inside shell quotes, e.g. 'checkpoint=\"runs/a=b/last.pt\"'"
        )
    key = _full_key(err)
    if key is not None and ("not in struct" in message or "Could not override" in message):
        try:
            suggestion = closest_key(key, _config_keys(config_name, config_path))
        except Exception:  # a suggestion is a courtesy: never hide the real error behind another
            suggestion = None
        if suggestion is not None and suggestion != key:
            message = f"{key}: no such key (did you mean {suggestion}?); {message}"
    return message
