import sys

from marginlab.cli import main

sys.exit(main())
