from app.ops.cli import main

main()
