// The shape of the proto3 JSON mapping tables scripts/gen-proto.mjs emits
// into every generated package (`PROTO_JSON`): what the HTTP gateway needs
// to read and write messages as grpc-gateway's jsonpb does (field names,
// kinds, enum value names), keyed by full proto names.

export interface JsonFieldDescriptor {
  /** The .proto field name (jsonpb's OrigName: what etcd's gateway writes). */
  name: string;
  /** protoc's lowerCamelCase JSON name, also accepted on input. */
  json: string;
  /** A scalar type name (`int64`, `bytes`, ...), or `enum` / `message` with `ref`. */
  type: string;
  /** Full proto name of the enum or message type. */
  ref?: string;
  repeated?: true;
  /** 64-bit field decoded as a bigint (`// @bigint` in the .proto). */
  bigint?: true;
  oneof?: string;
}

export interface JsonMessageDescriptor {
  fields: JsonFieldDescriptor[];
}

export interface JsonEnumDescriptor {
  /** The Go type name jsonpb's errors use (`etcdserverpb.RangeRequest_SortOrder`). */
  go: string;
  values: Record<string, number>;
}

export interface ProtoJsonTable {
  messages: Record<string, JsonMessageDescriptor>;
  enums: Record<string, JsonEnumDescriptor>;
  /** gRPC method path → [request type, response type]. */
  methods: Record<string, [string, string]>;
}
