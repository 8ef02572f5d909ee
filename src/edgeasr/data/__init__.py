"""The data stage: corpora as NeMo-style JSONL manifests, by one labelling convention.

``prompts`` (sentences from the word lists and templates in ``prompt_lists/``), ``tts`` (the
speech engines), ``synth`` (prompts spoken by many voices into a corpus), ``importers`` (existing
recordings into the convention), ``conditioning`` (level, silence, clipping), ``augment`` (noise,
reverberation, codecs for training) and ``validate`` (a corpus checked and profiled). ``cli`` owns
``edgeasr data ...``. Imports only the runtime core.
"""
