import sys

from deconv_arena.cli import main

sys.exit(main())
