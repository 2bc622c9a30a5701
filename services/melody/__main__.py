from services.melody.app import service

service.run()
