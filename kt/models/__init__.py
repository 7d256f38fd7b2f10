"""The models: one protocol (:class:`kt.models.base.Model`) and a registry of implementations.

Each model module registers its class with :func:`kt.models.base.register`;
:func:`kt.create` and :func:`kt.load_model` look names up there. Importing
this package imports no model module (and no JAX).
"""
