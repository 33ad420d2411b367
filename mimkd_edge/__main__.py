"""`python -m mimkd_edge ...` (also how torchrun starts it)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="mimkd-edge")
