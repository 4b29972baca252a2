from iotwatch.main import main

raise SystemExit(main())
