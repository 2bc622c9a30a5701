from services.render.app import service

service.run()
