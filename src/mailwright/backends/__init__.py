"""Email backends: ``mailwright.backends.<name>.EmailBackend``.

smtp (the default), console, filebased, locmem and dummy; custom backends subclass
``mailwright.backends.base.BaseEmailBackend``.
"""
