from serve.server import main

raise SystemExit(main())
