from tunix_rt.cli import main

raise SystemExit(main())
