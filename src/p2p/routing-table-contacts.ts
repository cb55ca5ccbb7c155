// Which peers kad-dht's routing table takes in (issue 16: a cluster's start-up). kad-dht 16 pings every new
// contact before adding it, and a contact it has only heard of (each of the up to 20 closer peers in any
// FIND_NODE answer) is dialled for that ping: one self-query made a node connect to every peer the answers
// named, so a 32-node cluster started together became a full mesh within seconds (~1.2-1.7 CPU s a node: a
// noise handshake, identify both ways and a ping stream per connection), competing with the nodes still
// starting. Here a contact joins the table only while it is connected to this node (it dialled us, or one of
// our queries reached it), as go-libp2p-kad-dht admits only peers it has exchanged with: no dial, no ping.
// A peer the answers named is still dialled when a query needs it, and joins the table then.
import type { PeerId } from '@libp2p/interface';

interface Contact {
  peerId: PeerId;
}

interface DhtRoutingTable {
  routingTable?: { kb?: { verify?: unknown }; safeDispatchEvent?: unknown };
}

/**
 * Replaces kad-dht's check of a new routing-table contact (a ping) with `isConnected`. A contact admitted is
 * announced as a ping that answered would have been ('peer:ping'), which kad-dht's closest-peer tagger
 * listens for. Returns whether kad-dht still has the fields (a unit test checks it, so an upgrade that
 * renames them fails there).
 */
export function admitConnectedContactsOnly(dht: unknown, isConnected: (peer: PeerId) => boolean): boolean {
  const table = (dht as DhtRoutingTable).routingTable;
  const kb = table?.kb;
  if (kb === undefined || typeof kb.verify !== 'function' || typeof table?.safeDispatchEvent !== 'function') return false;
  const announce = table.safeDispatchEvent.bind(table) as (type: string, init: { detail: PeerId }) => void;
  kb.verify = async (contact: Contact): Promise<boolean> => {
    if (!isConnected(contact.peerId)) return false;
    announce('peer:ping', { detail: contact.peerId });
    return true;
  };
  return true;
}
