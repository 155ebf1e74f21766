"""The tf-idf features shared by the linear comparators.

scikit-learn's ``TfidfVectorizer`` with its default settings (lower-casing, the default
``token_pattern``, unigrams, ``min_df=1``, raw term counts, l2 normalisation, smoothed idf):
the same defaults as LibMultiLabel's ``linear.Preprocessor``, so that the sklearn and
LibMultiLabel one-vs-rest models see identical features. Fitted on the fitting documents only.
"""

from sklearn.feature_extraction.text import TfidfVectorizer

TFIDF_PARAMS = {}


def tfidf_features(fit_texts, *others, params=None):
    """Features of the fitting texts and of each list in ``others``, and the vectoriser;
    ``params`` overrides ``TFIDF_PARAMS`` (analyses only: the comparators use the defaults)."""
    vec = TfidfVectorizer(**{**TFIDF_PARAMS, **(params or {})})
    X_fit = vec.fit_transform(fit_texts)
    return (X_fit, *(vec.transform(t) for t in others), vec)
