from rlef_cli import main

main()
