import { conductorConformance } from '../../conformance/conductor.js';
import { FakeConductor } from '../../fakes/nova-conductor.js';

conductorConformance('fake', async () => ({ conductor: new FakeConductor(), host: 'conformance-host', cleanup: async () => undefined }));
