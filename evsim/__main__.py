"""``python -m evsim``: the ``evsim`` command."""

from evsim.cli.main import main

if __name__ == "__main__":
    main()
