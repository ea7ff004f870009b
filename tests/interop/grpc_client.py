"""A gRPC client nobody here wrote the library of: Python grpcio, grpcio-reflection (v1alpha)
and grpcio-health-checking. It knows no zoorpc and no generated stubs: services and message
types come from server reflection, so it works exactly as a stock tool would.

  grpc_client.py inspect ADDR
      prints `services <comma-separated names>`, `health <status>`, `hello <message> <provider>`
  grpc_client.py describe ADDR MESSAGE
      prints `services <comma-separated names>`, then `message <name> <field>:<type>,...` once
      MESSAGE and every file it needs, transitively, came by reflection and make a message class
"""

import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "hello.v1.HelloService"


def say(line):
    print(line, flush=True)


def say_hello_stub(channel):
    """SayHello as a callable, with request/response classes built from reflection."""
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    method = pool.FindServiceByName(SERVICE).methods_by_name["SayHello"]
    request_class = message_factory.GetMessageClass(method.input_type)
    reply_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{SERVICE}/SayHello",
        request_serializer=request_class.SerializeToString,
        response_deserializer=reply_class.FromString,
    )
    return database, request_class, call


def inspect(address):
    with grpc.insecure_channel(address) as channel:
        database, request_class, call = say_hello_stub(channel)
        say("services " + ",".join(sorted(database.get_services())))
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        say("health " + health_pb2.HealthCheckResponse.ServingStatus.Name(health.status))
        reply = call(request_class(name="python"), timeout=10)
        say(f"hello {reply.message} {reply.provider}")


def describe(address, name):
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        say("services " + ",".join(sorted(database.get_services())))
        # The pool asks reflection for the file holding `name`, then for each file it imports by
        # name: any one missing raises here.
        message = descriptor_pool.DescriptorPool(database).FindMessageTypeByName(name)
        message_factory.GetMessageClass(message)
        fields = ",".join(
            f"{field.name}:{field.message_type.full_name if field.message_type else field.type}"
            for field in message.fields
        )
        say(f"message {message.full_name} {fields}")


if __name__ == "__main__":
    if sys.argv[1] == "inspect":
        inspect(sys.argv[2])
    elif sys.argv[1] == "describe":
        describe(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}")
