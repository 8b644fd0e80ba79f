"""ELECTRA pre-training in pure PyTorch (Clark et al. 2020, arXiv:2003.10555),
as ELECTRAMed (Miolo et al. 2021, arXiv:2104.09585) used it. No spaCy import here.

Modules, in the order the data flows:
  config.py   the schema of configs/pretrain_*.cfg; overrides; misspelled keys get a suggestion
  vocab.py    WordPiece trained on the corpus, or a given vocab.txt (SciVocab), as a fast BERT tokenizer
  data.py     corpus checks -> document-aware packed [CLS] A [SEP] B [SEP] sequences -> .npy shards
  masking.py  the pure masking function and the discriminator labels
  prepare.py  corpus checks -> vocab -> init_from checks -> shards, before any training
  model.py    generator + discriminator (shared embeddings, masked-only MLM logits), get_lr, param groups
  checkpoint.py  atomic checkpoints with RNG states and data position; safe loading; SIGINT/SIGTERM
  train.py    the loop only (Accelerate; resume at the saved data position)
  log.py      the JSONL log and curves.png
  export.py   save_pretrained directories that spacy-transformers loads by path, with a model card;
              export of any checkpoint; random baselines (init-model)

Command line: `electramed vocab|shards|pretrain|export|init-model CONFIG [--section.key value]`;
several GPUs: `accelerate launch -m electramed_spacy.pretraining.train CONFIG [...]`.
"""
