"""The training stage: the compact CTC model, its recipe, training, evaluation and the word n-gram.

``frontend`` (the log-mel frontend as a torch module, defined in :mod:`edgeasr.features`),
``model`` (the QuartzNet-style CTC model), ``pretrained`` (encoders read from installed packages),
``recipe`` (a training recipe TOML), ``train`` (the loop, checkpoints, ``--resume``), ``distill``
(a frozen teacher encoder's frames as a second training target), ``average`` (means of
checkpoints), ``evaluate`` (WER and CER per split), ``conditions`` (the listening conditions a
split is also scored under), ``peers`` (pocketsphinx and Whisper tiny.en, scored beside edgeasr)
and ``language_model`` (the Kneser-Ney word n-gram the beam search reads, with an open
vocabulary). ``cli`` owns ``edgeasr train``, ``average``, ``lm``, ``eval`` and ``demo``. Imports
the data stage and the runtime core; torch is imported by the modules that build, train or
average models (``frontend``, ``model`` and everything that imports it), never by ``evaluate``,
``conditions``, ``peers`` or ``language_model``.
"""
