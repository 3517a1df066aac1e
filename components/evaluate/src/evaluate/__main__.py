from evaluate.cli import main

raise SystemExit(main())
