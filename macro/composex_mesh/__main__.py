"""``python -m composex_mesh``: the ``composex-mesh`` command line."""

from .cli import main

raise SystemExit(main())
