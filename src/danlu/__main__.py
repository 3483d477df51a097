"""`python -m danlu` runs the `danlu` command (useful under torchrun: `torchrun -m danlu train ...`)."""
import sys

from .cli import main

sys.exit(main())
