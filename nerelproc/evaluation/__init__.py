"""Scoring predictions against gold (NER and CLS figures) and the NER error taxonomy."""
