from tfgate.cli import main

main()
