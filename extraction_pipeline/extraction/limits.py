"""Default limits of the extraction core, in a module that imports nothing.

``workers`` reads them without importing the envelope machinery (pydantic), so that a one-file
``extract`` can start its worker before the parent has loaded anything heavy.
"""

DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
