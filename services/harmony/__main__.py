from services.harmony.app import service

service.run()
