package bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * (k) Kafka Streams computing the aggregates of the Quix peer (bench/quix_app.py).
 *
 * <pre>java -cp target/humidity-kstreams-1.jar:target/lib/* bench.HumidityStreams BROKER TOPIC N RESULT_FILE STATE_DIR</pre>
 *
 * Readings are parsed (Jackson), re-keyed by device through a repartition
 * topic, and counted in a persistent (RocksDB, changelogged) store: per device
 * the sum, the count and the number of distinct guids, and one key per
 * (device, guid) so that the per-reading cost does not grow with sensors.
 * Writes the first and last processing times (seconds) and the CPU cores the
 * process used in between once N readings are counted, then stops.
 */
public final class HumidityStreams {
  private static final ObjectMapper JSON = new ObjectMapper();

  private HumidityStreams() {}

  /** (device, "guid\0humidity") of a valid reading, nothing otherwise. */
  static List<KeyValue<String, String>> parse(byte[] value) {
    try {
      JsonNode doc = JSON.readTree(value);
      JsonNode device = doc.has("medicalImagingdevice") ? doc.get("medicalImagingdevice") : doc.get("medicalimagingdevice");
      JsonNode humidity = doc.path("payload").path("data").path("humidity");
      JsonNode guid = doc.get("guid");
      if (device == null || !device.isTextual() || guid == null || !guid.isTextual() || !humidity.isNumber()) {
        return List.of();
      }
      return List.of(KeyValue.pair(device.asText(), guid.asText() + '\0' + humidity.asDouble()));
    } catch (java.io.IOException e) {
      return List.of();
    }
  }

  public static void main(String[] args) throws Exception {
    String broker = args[0];
    String topic = args[1];
    long n = Long.parseLong(args[2]);
    Path result = Path.of(args[3]);
    String stateDir = args[4];
    double[] first = {0, 0};  // wall seconds, process CPU seconds
    java.util.concurrent.atomic.AtomicLong counted = new java.util.concurrent.atomic.AtomicLong();  // over every task
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, "bench-kstreams-" + UUID.randomUUID().toString().substring(0, 8));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, broker);
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");

    StreamsBuilder builder = new StreamsBuilder();
    builder.addStateStore(Stores.keyValueStoreBuilder(
        Stores.persistentKeyValueStore("totals"), Serdes.String(), Serdes.ByteArray()));
    KafkaStreams[] streams = new KafkaStreams[1];
    builder.stream(topic, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
        .flatMap((key, value) -> {
          if (first[0] == 0) {
            first[0] = System.currentTimeMillis() / 1000.0;
            first[1] = os.getProcessCpuTime() / 1e9;
          }
          return parse(value);
        })
        .repartition(Repartitioned.with(Serdes.String(), Serdes.String()).withName("by-device"))
        .process(() -> new Processor<String, String, Void, Void>() {
          private KeyValueStore<String, byte[]> store;

          @Override
          public void init(ProcessorContext<Void, Void> context) {
            store = context.getStateStore("totals");
          }

          @Override
          public void process(Record<String, String> record) {
            String device = record.key();
            String value = record.value();
            int split = value.indexOf('\0');
            String guidKey = "g:" + device + '\0' + value.substring(0, split);
            byte[] raw = store.get(device);
            ByteBuffer totals = raw == null ? ByteBuffer.allocate(24) : ByteBuffer.wrap(raw);
            double sum = totals.getDouble(0) + Double.parseDouble(value.substring(split + 1));
            long count = totals.getLong(8) + 1;
            long guids = totals.getLong(16);
            if (store.get(guidKey) == null) {
              store.put(guidKey, new byte[] {1});
              guids++;
            }
            store.put(device, ByteBuffer.allocate(24).putDouble(sum).putLong(count).putLong(guids).array());
            if (counted.incrementAndGet() == n) {
              double last = System.currentTimeMillis() / 1000.0;
              double cores = (os.getProcessCpuTime() / 1e9 - first[1]) / (last - first[0]);
              try {
                Path written = Path.of(result + ".tmp");  // the reader sees the whole file or none
                Files.writeString(written, "{\"first\": " + first[0] + ", \"last\": " + last + ", \"count\": " + n
                    + ", \"cpu_cores\": " + cores + "}", StandardCharsets.UTF_8);
                Files.move(written, result, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
              } catch (java.io.IOException e) {
                throw new RuntimeException(e);
              }
              new Thread(() -> streams[0].close()).start();
            }
          }
        }, "totals");

    streams[0] = new KafkaStreams(builder.build(), props);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> streams[0].close()));
    streams[0].start();
  }
}
