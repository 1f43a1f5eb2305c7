"""`python -m architect`: the command line."""

from architect.cli.main import main

if __name__ == "__main__":
    main()
