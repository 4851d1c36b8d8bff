"""`python -m rnnkit.charrnn train|sample ...`"""

import sys

from .cli import main

sys.exit(main())
