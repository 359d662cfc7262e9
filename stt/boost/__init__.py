"""Vocabulary boosting: phrases tokenised as the model does, NeMo's phrase tree, and its options."""
