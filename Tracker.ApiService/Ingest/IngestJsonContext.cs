using System.Text.Json.Serialization;
using Tracker.ApiService.Http;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Source-generated JSON metadata for the ingest hot path. It is added to the app's JSON options, so the strict
/// settings there (unknown and repeated properties refused, camelCase) apply unchanged.
/// </summary>
[JsonSerializable(typeof(LogRequest))]
[JsonSerializable(typeof(LogBatchRequest))]
[JsonSerializable(typeof(Envelope<object?>))]
[JsonSerializable(typeof(Envelope<BatchAccepted>))]
internal sealed partial class IngestJsonContext : JsonSerializerContext;
