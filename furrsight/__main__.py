from furrsight.cli import main

main()
