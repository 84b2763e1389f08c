#!/usr/bin/env python
"""A small Django project that sends through mailwright.django.EmailBackend
(tests/test_django_project.py runs it, with ``python -W error``)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
