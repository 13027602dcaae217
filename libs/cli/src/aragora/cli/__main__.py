from aragora.cli.main import main

main()
