import { Empty } from '../components/ui';
import { Link } from '../router';

export function NotFound() {
  return (
    <div class="page">
      <Empty title="The page you requested was not found.">
        <Link href="/projects">Go to the projects</Link>
      </Empty>
    </div>
  );
}
