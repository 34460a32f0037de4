"""The benchmarks behind ``vmae-bench``: one module per benchmark, and what they share.

- :mod:`.timing`: synchronised medians, FLOP counts, the measured matmul peak, memory
- :mod:`.models`: pretraining step, embedding forward and fine-tuning step, ours vs transformers
- :mod:`.cost`: how time and memory per clip grow with frames and size
- :mod:`.extract`: end-to-end embedding extraction, ours vs transformers' model and processor
- :mod:`.loader`: the training loader's clips/s per worker
- :mod:`.reader`: a reader's speed and memory over many opens

``vmae-bench learning`` (does pretraining pay off) is a task: :mod:`video_mae.tasks.learning_benchmark`.
"""
