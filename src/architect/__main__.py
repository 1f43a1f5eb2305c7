from architect.cli.main import main

main()
