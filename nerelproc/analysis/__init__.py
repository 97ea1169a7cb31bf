"""Looking at data and predictions: the corpus EDA report, plots, the review page."""
