from tracebaton._cli import main

raise SystemExit(main())
