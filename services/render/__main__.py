from services.render.app import service, start_warm_up

start_warm_up()  # while the worker starts (#22)
service.run()
