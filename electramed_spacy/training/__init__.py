"""Training on top of spaCy's loop: `resumable.train` (`electramed train`), checkpointed and continued."""
