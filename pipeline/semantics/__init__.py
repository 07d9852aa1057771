"""Latent semantics: predictors, boundaries, layer-wise editing, re-scoring, SeFa directions,
(original, edited) pairs, and the evaluation of translators trained on them."""
