from timebank.cli import main

raise SystemExit(main())
