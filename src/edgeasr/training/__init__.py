"""The training stage: the compact CTC model, its recipe, training, evaluation and the word n-gram.

``frontend`` (the log-mel frontend as a torch module, defined in :mod:`edgeasr.features`),
``model`` (the QuartzNet-style CTC model), ``recipe`` (a training recipe TOML), ``train`` (the
loop, checkpoints, ``--resume``), ``evaluate`` (WER and CER per split), ``conditions`` (the
listening conditions a split is also scored under), ``peers`` (pocketsphinx and Whisper tiny.en,
scored beside edgeasr) and ``language_model`` (the Kneser-Ney word n-gram the beam search reads,
with an open vocabulary). ``cli`` owns ``edgeasr
train``, ``lm``, ``eval`` and ``demo``. Imports the data stage and the runtime core; torch is
imported by ``frontend``, ``model`` and ``train`` only.
"""
