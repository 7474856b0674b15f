from neve.cli import main

raise SystemExit(main())
