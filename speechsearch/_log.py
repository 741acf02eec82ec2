"""The library's logger: silent unless the application configures logging."""

import logging

logger = logging.getLogger("speechsearch")
logger.addHandler(logging.NullHandler())
