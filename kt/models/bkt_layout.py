"""Deprecated: moved to :mod:`kt.models.bkt.layout`; this path will be removed in the next release."""

from kt.models.paths import moved

__getattr__ = moved(__name__, "kt.models.bkt.layout", globals())
