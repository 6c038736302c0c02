from fmcnet.cli import main

raise SystemExit(main())
