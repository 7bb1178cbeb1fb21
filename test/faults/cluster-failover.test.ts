/**
 * Fault (d): a Redis Cluster of three masters with a replica each; the master holding the answer's
 * slot is killed while the answer is produced, and its replica promoted (the fault ends once the
 * cluster reports ok again). Replication is asynchronous, so the newest appends may be lost with the
 * master: readers may be told (`failed`, or a 404 when the replica had not even received the answer's
 * record), never left with a silent hole or open.
 */
import { describeOnRedis } from '../../packages/redis/test/helpers/redis-server.js'
import { failoverClusterForTests } from './helpers/cluster.js'
import { defineRedisRuns } from './helpers/redis-runs.js'

const cluster = await failoverClusterForTests('faults: Redis Cluster failover')

describeOnRedis('an answer through a Redis Cluster failover', cluster, (cluster) => {
  defineRedisRuns('cluster failover', {
    timeout: 60_000,
    connection: () => ({ cluster: cluster.nodes }),
    prefix: 'faults-failover',
    fault(_random, prefix) {
      let replicaLacked = false
      return {
        // Replication is asynchronous: a replica promoted before it received the answer's record
        // makes it lost for good, and then a 404 is the end (checked just before the kill).
        dataMayBeLost: () => replicaLacked,
        async fault(id) {
          // The answer's two keys share the hash tag of its stream (packages/redis README, Key layout).
          const key = `${prefix}{rewind:response:${id}}:record`
          const slot = await cluster.slotOf(key)
          const seen = await cluster!
            .replicasHolding(key)
            .catch(() => ({ replicas: -1, holding: -1, views: '' }))
          if (seen.holding < 1) {
            replicaLacked = true
            console.info(
              `[faults] before the kill, ${seen.holding} of the ${seen.replicas} replica(s) of slot ${slot} held ${key} (${seen.views})`,
            )
          }
          await cluster.failover(slot)
        },
      }
    },
    afterRun: () => cluster.restore(),
  })
})
