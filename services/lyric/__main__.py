from services.lyric.app import service

service.run()
