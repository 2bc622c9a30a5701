from services.station.app import main

main()
