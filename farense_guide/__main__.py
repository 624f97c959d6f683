from farense_guide.cli import main

raise SystemExit(main())
